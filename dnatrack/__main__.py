import sys

from dnatrack.cli import main

sys.exit(main())
