from goglobal_shared.runtime import run_service
from intake.app import create_app
from intake.settings import IntakeSettings


def main() -> None:
    settings = IntakeSettings()
    run_service(create_app(settings), settings)


if __name__ == "__main__":
    main()
