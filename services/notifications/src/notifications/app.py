from fastapi import FastAPI

from goglobal_shared.runtime import worker_app
from notifications.bootstrap import bootstrap
from notifications.settings import NotificationsSettings


def create_app(settings: NotificationsSettings) -> FastAPI:
    return worker_app("GoGlobal notifications", settings, lambda: bootstrap(settings))
