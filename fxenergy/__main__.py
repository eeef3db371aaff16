import sys

from fxenergy.cli import main

sys.exit(main())
