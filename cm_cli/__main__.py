"""Allow ``python -m cm_cli``."""

from cm_cli.app import main

if __name__ == "__main__":
    main()
