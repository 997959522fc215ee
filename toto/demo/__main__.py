"""``python -m toto.demo``: run the embedded-worker tour."""

import sys

from toto.demo import main

sys.exit(main())
