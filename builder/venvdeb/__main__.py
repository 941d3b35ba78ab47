import sys

from venvdeb.cli import main

sys.exit(main())
