"""Hyper-parameter search in RecBole's style (its run_hyper.py), on the plugin's training path:

    python run_hyper_negs.py --config_files=bpr.yaml --params_file=dns.hyper --output_file=dns.result

``dns.hyper`` holds one ``key type values`` line per searched key, e.g. ``dns_candidates choice [8,16,32]``.
"""

import sys

from recbole_negs.hyper import main

if __name__ == "__main__":
    sys.exit(main())
