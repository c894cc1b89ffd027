"""``python -m gmgbench.harness.gmg_estimators``: see the package's docstring."""
from gmgbench.harness.gmg_estimators import main

raise SystemExit(main())
