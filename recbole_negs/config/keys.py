"""Every config key the plugin adds: what it means and which values it accepts.

Defaults live in the YAML files under ``properties/`` (RecBole's convention); this table is what validation
checks against and what the README's key table is generated from (``python -m recbole_negs.config.keys``), so the
documentation cannot drift from the code.
"""

import difflib
import importlib.util
import os
from dataclasses import dataclass
from typing import Any, Callable, Tuple

from recbole_negs import registry
from recbole_negs.config.properties import method_names
from recbole_negs.errors import ConfigError

SAMPLERS = registry.names("sampler")
LOSSES = registry.names("loss")
TRAINERS = registry.names("trainer")
METHODS = ("none",) + method_names()
UFN_VARIANTS = ("ufn", "fmr", "fcr", "removal", "variance", "teacher")

# Keys starting with these belong to the plugin; a misspelt one is reported instead of silently ignored.
PLUGIN_PREFIXES = ("neg_", "seq_", "popularity_", "soft_bpr_", "gbce_", "sampled_softmax_", "dns_", "genni_",
                   "srns_", "ufn_")
# RecBole's own keys that happen to start with one of those prefixes.
RECBOLE_KEYS_WITH_PLUGIN_PREFIX = {"seq_len", "seq_separator", "neg_sampling"}


@dataclass(frozen=True)
class Key:
    name: str
    allowed: str
    meaning: str
    check: Callable[[Any], bool]
    group: str = "general"


def _is_bool(v):
    return isinstance(v, bool)


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def one_of(*values):
    return lambda v: isinstance(v, str) and v in values


def int_at_least(lo):
    return lambda v: _is_int(v) and v >= lo


def number_in(lo, hi, lo_open=False, hi_open=False):
    def check(v):
        if not _is_number(v) or v != v:
            return False
        above = v > lo if lo_open else v >= lo
        below = v < hi if hi_open else v <= hi
        return above and below

    return check


def int_at_least_or(lo, *words):
    return lambda v: (isinstance(v, str) and v in words) or int_at_least(lo)(v)


def number_in_or_none(lo, hi, lo_open=False, hi_open=False):
    inner = number_in(lo, hi, lo_open, hi_open)
    return lambda v: v is None or inner(v)


INF = float("inf")

KEYS: Tuple[Key, ...] = (
    # --- what to train with
    Key("sampler", "|".join(SAMPLERS),
        "negative sampler; `none` keeps RecBole's own training (its `loss_type` and negatives)",
        one_of(*SAMPLERS)),
    Key("loss", "|".join(LOSSES), "loss over the positive and its sampled negatives; `full_softmax` draws no "
        "negatives and trains the cross-entropy over every item on the plugin's rows", one_of(*LOSSES)),
    Key("trainer", "|".join(TRAINERS), "`negs`: sampler hooks and state in checkpoints; `ufnrec`: UFNRec's "
        "mining, label reversing and mean teacher", one_of(*TRAINERS)),
    Key("method", "|".join(METHODS), "preset that sets sampler, loss, trainer and the paper's hyper-parameters",
        one_of(*METHODS)),
    Key("neg_sample_num", "int >= 1", "K, negatives per positive (per position for sequential models)",
        int_at_least(1)),
    Key("embedding_l2", "float >= 0", "the papers' squared L2 on the batch's ego embeddings (users, positives, "
        "negatives): lambda * sum ||e||^2 / (2 B); general models with user and item tables (BPR, LightGCN, NGCF), "
        "added to RecBole's reg_weight term; 0 = none (RecBole's BPR model has no L2)", number_in(0, INF)),
    Key("neg_exclude", "history|target", "items never drawn as a negative: the user's training items, or only "
        "the target itself", one_of("history", "target")),
    Key("neg_share", "target|sequence|batch", "who shares a draw of negatives: each target its own K (the "
        "papers), each batch row (a user's sequence) one set for all its targets, or one set for the whole batch; "
        "shared sets are scored by one matmul (N x K memory) and a shared item that is a target's positive or "
        "excluded for it is masked out of that target's loss", one_of("target", "sequence", "batch")),
    Key("neg_sample_replacement", "true|false", "draw the K negatives of one positive with replacement; false "
        "needs K <= catalog size minus the exclusions", _is_bool),
    Key("plot", "true|false (true needs matplotlib)", "write the run's validation curve, training loss and the "
        "sampler's per-epoch statistics (hardness, share outscoring, UFNRec's reversals) as a PNG next to "
        "RecBole's log file (`pip install 'recbole-negs[plot]'`)",
        lambda v: _is_bool(v) and (not v or importlib.util.find_spec("matplotlib") is not None)),
    Key("checkpoint_file", "~ or the path of a checkpoint", "resume training from this checkpoint (written "
        "by the plugin or by RecBole); it is unpickled, so name only files you trust",
        lambda v: v is None or (isinstance(v, str) and os.path.isfile(v))),
    # --- sequence training
    Key("seq_train_mode", "all_positions|prefix", "sequential models: one row per user sequence, a target at "
        "every position (SASRec paper), or RecBole's one row per prefix", one_of("all_positions", "prefix")),
    Key("seq_batch_size_unit", "targets|rows", "all_positions: `train_batch_size` counts training targets "
        "(rows per batch = train_batch_size / mean targets per row, so an epoch makes as many steps as RecBole's "
        "prefix rows) or rows (user sequences, as the GenNi and UFNRec papers batch)", one_of("targets", "rows")),
    Key("seq_long_policy", "windows|last", "all_positions, users longer than MAX_ITEM_LIST_LENGTH: "
        "non-overlapping windows that cover every target, or only the last window (the papers)",
        one_of("windows", "last")),
    # --- samplers
    Key("popularity_alpha", "float >= 0", "popularity sampler draws item i with probability ~ count_i^alpha",
        number_in(0, INF), "sampler: popularity"),
    Key("dns_candidates", "int >= neg_sample_num", "DNS / PDNS: H uniform candidates per positive; the K "
        "highest-scored become the negatives", int_at_least(1), "sampler: dns"),
    Key("genni_alpha", "float >= 0", "GenNi: negatives drawn from softmax(alpha * score) over the pre-selected "
        "items (Eq. 5); 0 is uniform; the starting value when the curriculum is on", number_in(0, INF),
        "sampler: genni"),
    Key("genni_beta", "float in (0, 1]", "GenNi: share of the catalog pre-selected uniformly before scoring",
        number_in(0, 1, lo_open=True), "sampler: genni"),
    Key("genni_beta_schedule", "~ or int m >= 1", "GenNi: ~ keeps genni_beta fixed; m schedules beta = "
        "min(0.001 * 10^(epoch / m), 1) (Eq. 7)", lambda v: v is None or int_at_least(1)(v), "sampler: genni"),
    Key("genni_preselect", "per_position|per_batch", "GenNi: a pre-selected set per (user, time step) as "
        "Algorithm 1 draws it (faithful), or one set per batch shared by all positions (fast; the same at "
        "beta = 1, a different method at small beta)", one_of("per_position", "per_batch"), "sampler: genni"),
    Key("genni_group_rows", "int >= 1", "GenNi per_position: targets are put in random groups of this many "
        "rows that share the draw of their pre-selected set, each target's set still a uniform beta share of its "
        "allowed items (Algorithm 1's law per target, docs/genni.md), scored by one batched product; 1 = an "
        "independent set per target", int_at_least(1), "sampler: genni"),
    Key("genni_curriculum", "true|false", "GenNi's self-adjusted curriculum (section 3.4): alpha goes up by "
        "genni_alpha_step when the batch loss fell, down when it rose, within the bounds",
        _is_bool, "sampler: genni"),
    Key("genni_alpha_step", "float > 0", "GenNi curriculum: change of alpha per batch", number_in(0, INF, True),
        "sampler: genni"),
    Key("genni_alpha_bounds", "[lo, hi], 0 <= lo <= hi", "GenNi curriculum: alpha stays in [lo, hi] (the "
        "paper tuned alpha in 0..6)", lambda v: isinstance(v, (list, tuple)) and len(v) == 2 and all(
            number_in(0, INF)(x) for x in v) and v[0] <= v[1], "sampler: genni"),
    Key("mixed_uniform_num", "int >= 1", "mixed negative sampling: uniform catalog draws added to the "
        "in-batch negatives", int_at_least(1), "sampler: mixed"),
    Key("srns_pool_size", "int >= 1", "SRNS: P candidates per user, drawn with replacement from the items "
        "outside the user's training items, 5 epochs before use (memory per user: 20 P + min(20 n_items, 100 P) bytes)",
        int_at_least(1), "sampler: srns"),
    Key("srns_s1", "int >= 1", "SRNS: memory size S1 per user", int_at_least(1), "sampler: srns"),
    Key("srns_s2", "int >= 1", "SRNS: fresh pool items S2 scored with the memory at every refresh",
        int_at_least(1), "sampler: srns"),
    Key("srns_tau", "float > 0", "SRNS: temperature of the memory refresh softmax(score / tau)",
        number_in(0, INF, lo_open=True), "sampler: srns"),
    Key("srns_alpha", "float", "SRNS: weight of the std term; negative = select by std alone (authors' code)",
        number_in(-INF, INF), "sampler: srns"),
    Key("srns_warmup", "int >= 0", "SRNS: T0, epochs over which alpha_t rises linearly to alpha",
        int_at_least(0), "sampler: srns"),
    Key("srns_mode", "real|synthetic", "SRNS: real (the authors' real-data code) or synthetic (section 4.2: "
        "epoch-start raw scores, no pools, a known false negative fed into memory)",
        one_of("real", "synthetic"), "sampler: srns"),
    # --- UFNRec
    Key("ufn_reverse_threshold", "int >= 1", "UFNRec m: a placement from the record whose count for that (user, "
        "position, item) exceeds m is a false negative", int_at_least(1), "trainer: ufnrec"),
    Key("ufn_lambda", "float >= 0", "UFNRec: weight of the consistency loss; total = 2 * mean BCE + lambda * "
        "consistency (the authors' code)", number_in(0, INF), "trainer: ufnrec"),
    Key("ufn_ema_decay", "float in [0, 1)", "UFNRec: mean-teacher decay d, warmed up as min(d, (1+n)/(10+n))",
        number_in(0, 1, hi_open=True), "trainer: ufnrec"),
    Key("ufn_warmup_epochs", "auto or int >= 0", "UFNRec: epochs before mining and the teacher start; auto = "
        "when the loss curve flattens (the authors' rule, needs 8 finished epochs)",
        int_at_least_or(0, "auto"), "trainer: ufnrec"),
    Key("ufn_teacher_dropout", "true|false", "UFNRec: run the teacher's forward in train mode (dropout on, the "
        "authors' code) or in eval mode", _is_bool, "trainer: ufnrec"),
    Key("ufn_evaluate", "teacher|student", "UFNRec: which model is evaluated and stored as best once mining "
        "has started", one_of("teacher", "student"), "trainer: ufnrec"),
    Key("ufn_variant", "|".join(UFN_VARIANTS), "UFNRec and its ablations: ufn (reverse + consistency), fmr "
        "(reverse only), fcr (consistency only, label 0), removal (mined negatives leave the loss), variance "
        "(SRNS-style mining instead of the count rule), teacher (the control: mining and the EMA teacher run and the "
        "teacher is evaluated, but mined negatives keep label 0 and get no consistency term)", one_of(*UFN_VARIANTS), "trainer: ufnrec"),
    Key("ufn_variance_threshold", "float > 0", "UFNRec variance variant: mined when placed from the record at "
        "least m times before, mean sigmoid(s - s_pos) > 0.5 and its std below this", number_in(0, INF, True),
        "trainer: ufnrec"),
    Key("ufn_adam_betas", "[b1, b2] in [0, 1)", "UFNRec: Adam betas (the authors' code: [0.9, 0.98])",
        lambda v: isinstance(v, (list, tuple)) and len(v) == 2 and all(number_in(0, 1, hi_open=True)(b)
                                                                        for b in v), "trainer: ufnrec"),
    # --- evaluation
    Key("eval_mask_history", "true|false", "full ranking of sequential models: never rank the user's earlier "
        "items (its input sequence, the target excepted), as S3-Rec's and GenNi's protocol; RecBole masks them "
        "for general models only", _is_bool, "evaluation"),
    Key("eval_neg_exclude", "recbole|train", "sampled evaluation (e.g. uni100): RecBole's negatives, or the UFNRec "
        "code's: uniform with replacement outside the user's training items and the target, redrawn at every "
        "evaluation", one_of("recbole", "train"), "evaluation"),
    Key("eval_neg_seed", "~ or int", "with eval_neg_exclude: train: ~ redraws the negatives at every evaluation "
        "(UFNRec's code); a seed draws one set per user, outside everything it interacted with, for validation "
        "and test alike (SRNS's code)", lambda v: v is None or _is_int(v), "evaluation"),
    Key("eval_max_users", "~ or int >= 1", "each evaluation ranks a fresh random subset of this many users (evaluation "
        "rows, one per user under leave-one-out) when there are more, seeded by seed and evaluation number; the "
        "UFNRec code uses 10000; ~ evaluates everyone", lambda v: v is None or (_is_int(v) and v >= 1),
        "evaluation"),
    # --- losses
    Key("soft_bpr_beta", "float in (0, 10]", "soft BPR: -ln sigmoid(beta * (pos - neg)); beta = 1 is BPR",
        number_in(0, 10, lo_open=True), "loss: soft_bpr"),
    Key("gbce_t", "float in [0, 1]", "gBCE calibration t; the positive term is raised to beta = t(a - 1) + 1, "
        "a = K / (|I| - 1); t = 0 is BCE", number_in(0, 1), "loss: gbce"),
    Key("sampled_softmax_logq", "true|false", "sampled softmax: subtract log(K q) from each negative's logit "
        "when the sampler knows its proposal q (uniform, popularity)", _is_bool, "loss: sampled_softmax"),
)

KEY_BY_NAME = {key.name: key for key in KEYS}


def check_value(name, value):
    """Raise ConfigError naming the key, its value and the allowed values."""
    key = KEY_BY_NAME[name]
    if not key.check(value):
        raise ConfigError(f"config key '{name}' = {value!r} is invalid; allowed: {key.allowed}")


def check_unknown_keys(config_keys):
    """A key that looks like the plugin's but is not in the table is almost always a typo."""
    for name in config_keys:
        if name in KEY_BY_NAME or name in RECBOLE_KEYS_WITH_PLUGIN_PREFIX or not name.startswith(PLUGIN_PREFIXES):
            continue
        close = difflib.get_close_matches(name, KEY_BY_NAME, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(f"config key '{name}' is not a recbole-negs key{hint} "
                          "(the key table is in the README)")


def markdown_table(defaults, per_sampler=None):
    """The README's key table; `defaults` maps key -> default value read from properties/, `per_sampler` maps
    key -> {sampler: its own default} where a sampler's file changes it (shown beside the overall default)."""
    rows = ["| key | default | allowed | meaning |", "|---|---|---|---|"]
    for key in KEYS:
        default = defaults.get(key.name, "")
        default = f"`{'~' if default is None else default}`"
        others = (per_sampler or {}).get(key.name, {})
        if others:
            default += " (" + "; ".join(f"{sampler}: `{value}`" for sampler, value in sorted(others.items())) + ")"
        cells = (f"`{key.name}`", default, key.allowed, f"{key.meaning} ({key.group})")
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")  # a bare | ends a cell
    return "\n".join(rows)


if __name__ == "__main__":
    from recbole_negs.config.properties import all_defaults, sampler_overrides

    print(markdown_table(all_defaults(), sampler_overrides()))
