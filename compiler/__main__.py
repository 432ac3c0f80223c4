import sys

from joule.cli import main

sys.exit(main())
