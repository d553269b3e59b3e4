"""The storage limit for `bench.intake_bench`: a bare FastAPI endpoint, served by uvicorn in its own process, that
stores each POSTed service request as ONE insert of a document shaped exactly like intake's, into the same
database server, with PyMongo's asyncio client, and answers 201.

    .venv/bin/python -m bench.bare_app --port 8100 --mongodb-uri mongodb://127.0.0.1:27017/ --database bench_bare

The document is made once at start by intake's own code (`submit` and `ServiceRequestRepository.add`, captured
instead of written: the request, its referral with its history, and the pending `referral.submitted` event), and
the collection gets intake's indexes, so each insert writes the same bytes and index entries as intake's. What the
endpoint leaves out is everything intake adds around that insert: API-key authentication, the enterprise lookup,
validation, the domain code, the response model, the middleware, logging, metrics and tracing, and the relay
that publishes the event afterwards.
"""

import argparse
import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, cast

import uvicorn
from fastapi import FastAPI, Response
from pymongo.asynchronous.collection import AsyncCollection

from bench.common import REQUEST_BODY
from goglobal_contract.ids import new_id
from goglobal_shared.mongo import Document, make_client
from intake.adapters.service_request_repository import ServiceRequestRepository
from intake.domain.inputs.service_request import Need
from intake.domain.service_requests import Actor, submit
from tests import factories

COLLECTION = "service_requests"


class _Recorder:
    """Stands in for a collection (and, through `database`, for its siblings): records every document inserted;
    any other call does nothing."""

    def __init__(self, name: str, inserted: list[tuple[str, Document]]) -> None:
        self.name = name
        self.inserted = inserted

    @property
    def database(self) -> "_RecorderDatabase":
        return _RecorderDatabase(self.inserted)

    async def insert_one(self, document: Document, *args: object, **kwargs: object) -> None:
        self.inserted.append((self.name, document))

    def __getattr__(self, name: str) -> Callable[..., Awaitable[None]]:
        async def ignored(*args: object, **kwargs: object) -> None:
            return None

        return ignored


class _RecorderDatabase:
    def __init__(self, inserted: list[tuple[str, Document]]) -> None:
        self.inserted = inserted

    def __getitem__(self, name: str) -> _Recorder:
        return _Recorder(name, self.inserted)


async def intake_writes() -> list[tuple[str, Document]]:
    """(collection, document) for every insert intake's repository makes to store one request with
    REQUEST_BODY's need, made by intake's own code."""
    now = datetime.now(UTC)
    enterprise = factories.enterprise(seed=7)
    request = submit(
        new_id(),
        enterprise,
        [Need.model_validate(need) for need in REQUEST_BODY["needs"]],
        Actor("enterprise:bench", new_id()),
        now,
    )
    inserted: list[tuple[str, Document]] = []
    recorder = _Recorder(COLLECTION, inserted)
    repository = ServiceRequestRepository(cast(AsyncCollection[Document], recorder))
    await repository.add(request, now)
    return inserted


def intake_document() -> Document:
    """The service-request document itself (the one insert the bare endpoint repeats)."""
    return next(document for collection, document in asyncio.run(intake_writes()) if collection == COLLECTION)


def create_app(mongodb_uri: str, database: str) -> FastAPI:
    template = intake_document()
    collections: list[AsyncCollection[Document]] = []

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = make_client(mongodb_uri)
        collection = client[database][COLLECTION]
        await ServiceRequestRepository(collection).ensure_indexes()
        collections.append(collection)
        try:
            yield
        finally:
            await client.close()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/service-requests", status_code=201)
    async def store(body: dict[str, Any], response: Response) -> dict[str, str]:
        document = {**template, "_id": new_id(), "created_at": datetime.now(UTC)}
        await collections[0].insert_one(document)
        response.headers["Location"] = f"/v1/service-requests/{document['_id']}"
        return {"id": document["_id"]}

    return app


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.bare_app", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--mongodb-uri", required=True)
    parser.add_argument("--database", required=True)
    args = parser.parse_args()
    app = create_app(args.mongodb_uri, args.database)
    # The same server as the services' (goglobal_shared.runtime): only the app differs.
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_config=None, loop="uvloop", http="httptools")


if __name__ == "__main__":
    main()
