from goglobal_shared.runtime import run_service
from goglobal_shared.settings import load_settings
from notifications.app import create_app
from notifications.settings import NotificationsSettings


def main() -> None:
    settings = load_settings(NotificationsSettings)
    run_service(create_app(settings), settings)


if __name__ == "__main__":
    main()
