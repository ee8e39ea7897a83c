import sys

from asd.cli import main

sys.exit(main())
