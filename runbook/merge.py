"""`python -m runbook.merge`: the command CI jobs call to join shard reports (docs/ci.md).

Kept at this address so pipelines written against it keep working; the reader is
runbook.readers.merge.
"""

from __future__ import annotations

from runbook.readers.merge import main

if __name__ == "__main__":
    raise SystemExit(main())
