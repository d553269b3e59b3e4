from goglobal_shared.runtime import run_service
from goglobal_shared.settings import load_settings
from matching.app import create_app
from matching.settings import MatchingSettings


def main() -> None:
    settings = load_settings(MatchingSettings)
    run_service(create_app(settings), settings)


if __name__ == "__main__":
    main()
