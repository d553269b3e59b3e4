from fastapi import FastAPI

from goglobal_shared.runtime import worker_app
from matching.bootstrap import bootstrap
from matching.settings import MatchingSettings


def create_app(settings: MatchingSettings) -> FastAPI:
    return worker_app("GoGlobal matching", settings, lambda: bootstrap(settings))
