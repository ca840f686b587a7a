"""Train a RecBole model with recbole-negs' samplers and losses (the same as the ``recbole-negs`` command).
Example, about a minute on a laptop CPU:

    python run_recbole_negs.py --model=BPR --dataset=ml-100k --sampler=dns --epochs=5

``--help`` lists the sampler, loss and method names; a mistake stops it with one line, exit code 2.
"""

import sys

from recbole_negs.cli import main

if __name__ == "__main__":
    sys.exit(main())
