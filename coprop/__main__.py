import sys

from coprop.cli import main

sys.exit(main())
