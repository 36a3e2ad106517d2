import sys

from suites.perf.document import main

sys.exit(main())
