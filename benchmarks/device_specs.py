"""The experiments ``benchmarks.device_runs`` can run on a GPU machine: ``SPECS[name]`` is one table.

A spec is a plain dict, edited by hand:

* ``dataset``: a folder under ``--data-dir`` (``beauty``, ``gowalla``: made by ``benchmarks.device_pack``);
* ``shared``: RecBole / plugin keys of every row (a row's ``config`` wins);
* ``rows``: ``{"name", "model", "config", "seeds"}``; every (row, seed) is one process. Rows are plain config
  dicts, so a row with a new key (``neg_share: batch``, ...) is one more line;
* ``baseline``: the row every other row is compared with (seed mean ± SE and a paired per-user bootstrap);
* ``metrics``: the test metrics of the table (RecBole's lower-case names); ``main``: the compared metric;
* ``protocols``: ``recbole`` (RecBole's own: ``eval_mask_history: False``) and, for full ranking of a
  sequential model, ``masked`` (the user's earlier items never ranked, S3-Rec's / GenNi's protocol). The test of
  the best-validation model is computed under each; validation follows ``shared["eval_mask_history"]``.
  General models (MF) are always masked by RecBole (training items), so they list ``recbole`` only; sampled
  evaluation (uni100) has nothing to mask.

Settings are from the papers in ``../shared/papers`` and issues 18-20; each spec says where it departs.
"""

# --------------------------------------------------------------------------- SASRec on full Beauty
# GenNi section 5.1.4: SASRec "implemented based on S3-Rec" (Adam lr 1e-3, betas (0.9, 0.999), batch 256,
# patience 40); heads {1, 2, 4} and layers {1, 2, 3} were tuned per dataset and the chosen values are not
# printed. Issue 18 fixes h64, 2 layers, L50, dropout 0.5; the heads are S3-Rec's code default, 2 (also
# RecBole's default), and the feed-forward width S3-Rec's 4 x hidden (256), GELU.
SASREC_H64 = {
    "hidden_size": 64, "inner_size": 256, "n_layers": 2, "n_heads": 2, "hidden_act": "gelu",
    "MAX_ITEM_LIST_LENGTH": 50, "hidden_dropout_prob": 0.5, "attn_dropout_prob": 0.5,
    "learning_rate": 1e-3, "train_batch_size": 256, "seq_batch_size_unit": "rows",  # 256 sequences per batch
}
LEAVE_ONE_OUT_FULL = {
    "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user", "mode": "full"},
    "metrics": ["Hit", "NDCG"], "topk": [5, 10], "valid_metric": "NDCG@10", "eval_batch_size": 4096,
}
UNIFORM_BCE_K1 = {"sampler": "uniform", "loss": "bce", "neg_sample_num": 1, "neg_exclude": "history"}
RECBOLE_CE = {"sampler": "none", "loss_type": "CE"}
STOCK_BATCH = {"train_batch_size": 2048, "seq_batch_size_unit": "targets"}  # RecBole's default, counted in targets


def SSM_SHARED(k):  # noqa: N802  (a row template)
    return {"sampler": "uniform", "loss": "sampled_softmax", "neg_sample_num": k, "neg_share": "batch",
            "neg_exclude": "target", **STOCK_BATCH}
  # RecBole's SASRec, its prefix rows and full-softmax CE
CATALOG = {"loss": "full_softmax"}  # the plugin's full softmax on all-position rows

SPECS = {
    # Issue 18 item 1: GenNi Table 1 on full Beauty (22,363 users, 12,101 items). The paper trains with patience
    # 40; here a fixed budget of 100 epochs for every row (validation every 5, no early stopping), as the issue
    # allows, cut short by --budget-s (the JSON says where). The paper trains only the last 50 targets of a user
    # (S3-Rec's input_ids[-50:]): seq_long_policy last. Validation on the paper's protocol (history masked).
    "genni_table1": {
        "dataset": "beauty",
        "shared": {**SASREC_H64, **LEAVE_ONE_OUT_FULL, "eval_mask_history": True, "seq_long_policy": "last",
                   "epochs": 100, "eval_step": 5, "stopping_step": 1000},
        "baseline": "uniform_bce_k1",
        "metrics": ["ndcg@10", "hit@10", "ndcg@5", "hit@5"],
        "main": "ndcg@10",
        "protocols": ["masked", "recbole"],
        # GenNi Table 1, Beauty, SASRec and GenNi_SA (masked protocol; the paper prints percent)
        "paper": {"uniform_bce_k1": {"hit@5": 0.0384, "hit@10": 0.0607, "ndcg@5": 0.0249, "ndcg@10": 0.0321},
                  "genni": {"hit@5": 0.0630, "hit@10": 0.0879, "ndcg@5": 0.0448, "ndcg@10": 0.0533}},
        "rows": [
            {"name": "uniform_bce_k1", "model": "SASRec", "config": UNIFORM_BCE_K1, "seeds": [1, 2]},
            # method genni: alpha 2.5, beta 1.0, k 1, BCE, per-position pre-selection, target-only exclusion
            {"name": "genni", "model": "SASRec", "config": {"method": "genni"}, "seeds": [1, 2]},
            {"name": "genni_beta0.1", "model": "SASRec", "config": {"method": "genni", "genni_beta": 0.1},
             "seeds": [1]},
            {"name": "genni_curriculum", "model": "SASRec",
             "config": {"method": "genni", "genni_curriculum": True}, "seeds": [1]},
            {"name": "plugin_full_softmax", "model": "SASRec", "config": CATALOG, "seeds": [1]},
            {"name": "recbole_ce", "model": "SASRec", "config": RECBOLE_CE, "seeds": [1]},
        ],
    },

    # Issue 18 item 2: UFNRec Tables 2-3 on Beauty with the authors' code settings (method ufnrec: SASRec h50,
    # 2 blocks, 1 head, dropout 0.5, L50, last 50 targets, 100 uniform negatives outside the training items,
    # 2 x mean BCE, Adam betas (0.9, 0.98), 128 users per batch) and its protocol: uni100 outside the training
    # items, redrawn at every evaluation, a fresh 10,000 users per validation. Departures: 60 epochs (the code
    # 201), validation every 4 as the code; the final test ranks ALL users (not 10,000), so rows are paired on
    # the same users; S3-Rec's 5-core Beauty, not the paper's (DESIGN.md). Arm C (EMA teacher, no reversal) needs
    # ufn_variant: teacher (added for it). Mining rows also test the student (JSON: test_student).
    "ufnrec_beauty": {
        "dataset": "beauty",
        "shared": {"method": "ufnrec",
                   "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user",
                                 "mode": "uni100"},
                   "eval_neg_exclude": "train", "eval_max_users": 10000, "metrics": ["Hit", "NDCG"],
                   "topk": [1, 5, 10], "valid_metric": "NDCG@10", "eval_batch_size": 101 * 256,
                   "epochs": 60, "eval_step": 4, "stopping_step": 1000},
        "baseline": "A_no_mining",
        "metrics": ["ndcg@10", "hit@10", "ndcg@5", "hit@1"],
        "main": "ndcg@10",
        "protocols": ["recbole"],
        "paper": {},
        "rows": [
            # A: the same preset with mining never started (no teacher, no reversal)
            {"name": "A_no_mining", "model": "SASRec", "config": {"ufn_warmup_epochs": 10 ** 6}, "seeds": [1, 2]},
            # B: the paper's regime: warm-up until the loss flattens (the code's rule), m = 5
            {"name": "B_ufn_auto_m5", "model": "SASRec",
             "config": {"ufn_warmup_epochs": "auto", "ufn_reverse_threshold": 5}, "seeds": [1, 2]},
            # C: the control: B's mining and EMA teacher (evaluated), mined negatives not used
            {"name": "C_teacher_only", "model": "SASRec",
             "config": {"ufn_warmup_epochs": "auto", "ufn_reverse_threshold": 5, "ufn_variant": "teacher"},
             "seeds": [1]},
        ],
    },

    # Issue 19 item 1: PDNS Table 2 on Gowalla with MF (RecBole's BPR model) and Table 6's Gowalla MF settings:
    # Adam lr 0.001, F 64, batch 2048; H and beta as Table 6 (64, 0.2) with the beta grid {0.1, 0.2, 0.3};
    # DNS at H {16, 64} (the same tuning as PDNS's H); RNS; SRNS (its real-data preset, with this table's lr,
    # F and batch). 150 epochs, validation every 5 (the over-fitting regime), no early stopping; test metrics of
    # the best validation Recall@50. NOT expressed: Table 6's lambda 0.01 (a squared L2 on the batch
    # embeddings): RecBole's BPR model has no regularisation term and the plugin adds none for MF (its
    # regularization() covers graph models only); RecBole's weight_decay (Adam L2 on every parameter, every
    # step) is a different penalty and is not used. The baseline is DNS H64, PDNS's claim (Table 2: PDNS vs DNS).
    "pdns_gowalla": {
        "dataset": "gowalla",
        "shared": {"learning_rate": 0.001, "embedding_size": 64, "train_batch_size": 2048,
                   "epochs": 150, "eval_step": 5, "stopping_step": 1000,
                   "metrics": ["Recall", "NDCG"], "topk": [50], "valid_metric": "Recall@50",
                   "eval_batch_size": 1 << 23,
                   "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "order": "RO", "group_by": "user",
                                 "mode": "full"}},
        "baseline": "dns_h64",
        "metrics": ["recall@50", "ndcg@50"],
        "main": "recall@50",
        "protocols": ["recbole"],
        # PDNS Table 2 (MF, Gowalla): Recall@50, NDCG@50
        "paper": {"rns": {"recall@50": 0.2397, "ndcg@50": 0.1477}, "dns_h64": {"recall@50": 0.2572, "ndcg@50": 0.1608},
                  "srns": {"recall@50": 0.2588, "ndcg@50": 0.1620},
                  "pdns_h64_b0.2": {"recall@50": 0.2803, "ndcg@50": 0.1805},
                  "pdns_h64_b0.1": {"recall@50": 0.2178, "ndcg@50": 0.1376},  # Table 4 (MF, beta 0.1)
                  "pdns_h64_b0.3": {"recall@50": 0.2764, "ndcg@50": 0.1779}},  # Table 4 (MF, beta 0.3)
        "rows": [
            {"name": "rns", "model": "BPR", "config": {"sampler": "uniform", "loss": "bpr"}, "seeds": [1]},
            {"name": "dns_h64", "model": "BPR", "config": {"sampler": "dns", "loss": "bpr", "dns_candidates": 64},
             "seeds": [1]},
            {"name": "pdns_h64_b0.1", "model": "BPR",
             "config": {"method": "pdns", "dns_candidates": 64, "soft_bpr_beta": 0.1}, "seeds": [1]},
            {"name": "pdns_h64_b0.2", "model": "BPR",
             "config": {"method": "pdns", "dns_candidates": 64, "soft_bpr_beta": 0.2}, "seeds": [1]},
            {"name": "pdns_h64_b0.3", "model": "BPR",
             "config": {"method": "pdns", "dns_candidates": 64, "soft_bpr_beta": 0.3}, "seeds": [1]},
            # the preset's lr 1e-3 / F 32 / batch 1000 are the SRNS code's; this table's shared values win here
            {"name": "srns", "model": "BPR",
             "config": {"method": "srns", "learning_rate": 0.001, "embedding_size": 64, "train_batch_size": 2048},
             "seeds": [1]},
        ],
    },

    # Issue 20: the recommended SASRec recipe against RecBole's full-softmax CE under RecBole's protocol (no
    # history masking for validation; the test also reports the masked protocol). Model as genni_table1 (h64,
    # 2 layers, L50, dropout 0.5, lr 1e-3, batch 256); validation every 2 epochs for the NDCG-against-seconds
    # curve. Plugin rows keep the plugin's default all-position windows (every target trained).
    "recipe_beauty": {
        "dataset": "beauty",
        "shared": {**SASREC_H64, **LEAVE_ONE_OUT_FULL, "eval_mask_history": False,
                   "epochs": 100, "eval_step": 2, "stopping_step": 1000},
        "baseline": "recbole_ce",
        "metrics": ["ndcg@10", "hit@10"],
        "main": "ndcg@10",
        "protocols": ["recbole", "masked"],
        "paper": {},
        "rows": [
            # RecBole's own SASRec at its stock train_batch_size 2048 (prefix rows, 65 steps per epoch)
            {"name": "recbole_ce", "model": "SASRec", "config": {**RECBOLE_CE, "train_batch_size": 2048},
             "seeds": [1, 2]},
            # shared uniform negatives, logQ-corrected sampled softmax, at the same 2048 targets per step
            {"name": "ssm_shared_k1024", "model": "SASRec", "config": SSM_SHARED(1024), "seeds": [1, 2]},
            {"name": "ssm_shared_k4096", "model": "SASRec", "config": SSM_SHARED(4096), "seeds": [1]},
            {"name": "ssm_shared_k1024_b256rows", "model": "SASRec",
             "config": {**SSM_SHARED(1024), "train_batch_size": 256, "seq_batch_size_unit": "rows"}, "seeds": [1]},
            {"name": "mixed_1024_1024", "model": "SASRec",
             "config": {"sampler": "mixed", "neg_exclude": "target", **STOCK_BATCH}, "seeds": [1]},
            # gSASRec (Petrov & Macdonald 2023): 256 negatives, gBCE t = 0.75 (shared per batch here)
            {"name": "gbce_k256_t0.75", "model": "SASRec",
             "config": {"sampler": "uniform", "loss": "gbce", "neg_sample_num": 256, "gbce_t": 0.75,
                        "neg_share": "batch", "neg_exclude": "target", **STOCK_BATCH}, "seeds": [1]},
        ],
    },
    # Issue 18 item 3: UFNRec against its matched baseline on ml-100k (RecBole's wheel; --data-dir
    # <site-packages>/recbole/dataset_example), CPU: the same three arms as ufnrec_beauty, 60 epochs.
    "ufnrec_ml100k": None,  # filled below: ufnrec_beauty's arms and protocol on ml-100k, every user evaluated

    # Issue 19 item 2: SRNS's Fig. 4 claim on real data, real mode on ml-100k (the authors' real-data settings
    # through method srns: tau 10, T0 50, pool 3000, lr 1e-3, F 32, batch 1000, l2 0.01), S1 in {8, 64} x alpha in
    # {0, 5}, S2 = 8 S1; uni100 with one fixed set of negatives per user (the SRNS code), Recall@1 as the code
    # selects; 100 epochs. Difficulty-only (alpha 0) should fall at S1 64 (Fig. 4 d-f).
    "srns_real_ml100k": {
        "dataset": "ml-100k",
        "shared": {"method": "srns", "epochs": 100, "eval_step": 1, "stopping_step": 100,
                   "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "group_by": "user",
                                 "mode": "uni100"},
                   "eval_neg_exclude": "train", "eval_neg_seed": 2020, "metrics": ["Recall", "NDCG"],
                   "topk": [1, 3], "valid_metric": "Recall@1", "eval_batch_size": 101 * 256},
        "baseline": "s1_8_alpha_5",
        "metrics": ["recall@1", "recall@3", "ndcg@3"],
        "main": "recall@1",
        "protocols": ["recbole"],
        "paper": {},
        "rows": [
            {"name": f"s1_{s1}_alpha_{a}", "model": "BPR",
             "config": {"srns_s1": s1, "srns_s2": 8 * s1, "srns_alpha": float(a)}, "seeds": [0, 1, 2]}
            for s1 in (8, 64) for a in (0, 5)
        ],
    },

    # Issue 19 item 4: the ml-100k PDNS rows at equal tuning, into the over-fitting phase, CPU: MF (BPR) with
    # Table 6's MF settings (lr 0.001, F 64, squared L2 0.01 through embedding_l2, batch 2048); DNS and PDNS over
    # the same H {16, 64}, PDNS's beta over {0.1, 0.2, 0.3}; RNS beside. 100 epochs, validation every 5, no early
    # stopping; RecBole's random 8:1:1 split; Recall@50 / NDCG@50 as PDNS reports them.
    "pdns_ml100k": {
        "dataset": "ml-100k",
        "shared": {"learning_rate": 0.001, "embedding_size": 64, "train_batch_size": 2048, "embedding_l2": 0.01,
                   "epochs": 100, "eval_step": 5, "stopping_step": 1000,
                   "metrics": ["Recall", "NDCG"], "topk": [50], "valid_metric": "Recall@50",
                   "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "order": "RO", "group_by": "user",
                                 "mode": "full"}},
        "baseline": "dns_h16",  # the better-tuned DNS (H 16 beat H 64 here)
        "metrics": ["recall@50", "ndcg@50"],
        "main": "recall@50",
        "protocols": ["recbole"],
        "paper": {},
        "rows": [{"name": "rns", "model": "BPR", "config": {"sampler": "uniform", "loss": "bpr"}, "seeds": [1, 2]}]
        + [{"name": f"dns_h{h}", "model": "BPR", "config": {"sampler": "dns", "loss": "bpr", "dns_candidates": h},
            "seeds": [1, 2]} for h in (16, 64)]
        + [{"name": f"pdns_h{h}_b{b}", "model": "BPR",
            "config": {"sampler": "dns", "loss": "soft_bpr", "dns_candidates": h, "soft_bpr_beta": b},
            "seeds": [1, 2]} for h in (16, 64) for b in (0.1, 0.2, 0.3)],
    },

}


SPECS["ufnrec_ml100k"] = {**SPECS["ufnrec_beauty"], "dataset": "ml-100k",
                          "shared": {k: v for k, v in SPECS["ufnrec_beauty"]["shared"].items() if k != "eval_max_users"}}


def expand(names):
    """[(spec name, row dict, seed)] of the named specs, in spec and row order (costly seeds are not reordered:
    every row's first seed comes before any row's second, so a cut run keeps one seed of every row)."""
    out = []
    for name in names:
        if name not in SPECS:
            raise SystemExit(f"unknown spec {name!r}; known: {', '.join(SPECS)}")
        spec = SPECS[name]
        rows = spec["rows"]
        if spec["baseline"] not in {row["name"] for row in rows}:
            raise SystemExit(f"spec {name}: baseline {spec['baseline']!r} is not one of its rows")
        most = max(len(row["seeds"]) for row in rows)
        for i in range(most):
            for row in rows:
                if i < len(row["seeds"]):
                    out.append((name, row, row["seeds"][i]))
    return out
