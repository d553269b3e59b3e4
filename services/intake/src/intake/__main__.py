from goglobal_shared.runtime import run_service
from goglobal_shared.settings import load_settings
from intake.app import create_app
from intake.settings import IntakeSettings


def main() -> None:
    settings = load_settings(IntakeSettings)
    run_service(create_app(settings), settings)


if __name__ == "__main__":
    main()
