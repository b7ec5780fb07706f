"""`python -m webhook` is `kci-webhook`."""

import sys

from webhook.cli import main

sys.exit(main())
