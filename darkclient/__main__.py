"""python -m darkclient"""

import sys

from darkclient.cli import main

sys.exit(main())
