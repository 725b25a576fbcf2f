import sys

from mcrt_sklearn.cli import main

sys.exit(main())
