import sys

from avatar_studio.cli.main import main

sys.exit(main())
