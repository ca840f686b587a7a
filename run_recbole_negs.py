"""Train a RecBole model with recbole-negs' samplers and losses. Example:

    python run_recbole_negs.py --model=SASRec --dataset=ml-100k --sampler=genni
"""

import sys

from recbole_negs.cli import main

if __name__ == "__main__":
    sys.exit(main())
