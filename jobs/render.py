"""Ray job entrypoint, same flags as `promptreel render`:

    ray job submit --working-dir . -- python -m jobs.render MANIFEST --out RUN ...

Takes the same flags as `promptreel render`; inside a Ray job it joins the job's cluster
(RAY_ADDRESS is set by Ray), so the same command works on a laptop and on a cluster.
"""

import sys

from pipeline.cli import main

if __name__ == "__main__":
    sys.exit(main(["render", *sys.argv[1:]]))
