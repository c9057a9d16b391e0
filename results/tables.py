"""The results tables: the contract researchers' scripts rely on.

Each snapshot payload holds these tables as lists of flat rows (dicts with exactly these keys, in
this order). The API serves them as JSON and CSV with the same fields, the data package ships
them, and the codebook documents them from the descriptions below.
"""

# A participant's design and paradata, one list for the API's participants endpoint (in this
# order, public_id named "participant" and consented_at "started_at") and the wide export.
PARTICIPANT_FIELDS = (
    "public_id",
    "arm",
    "group",
    "position_order",
    "option_order",
    "weight",
    "language",
    "step_times",
    "position_seconds",
    "flags",
    "imported",
    "consented_at",
    "briefed_at",
    "completed_at",
)

ITEMS = {
    "item": "Question key of the paired item (ratings of options and other paired ratings).",
    "arm": "all, treatment or control.",
    "subgroup": "Key of the breakdown question, or 'group' for small groups; empty for the whole "
    "sample.",
    "subgroup_value": "The subgroup's answer (choice key or small-group number); empty for the "
    "whole sample.",
    "weighted": "true when the row uses participant weights (rows exist both ways if the poll "
    "has weights).",
    "n_pairs": "Participants with a substantive answer at both T1 and T2 (complete pairs).",
    "mean_t1": "Mean at T1 over complete pairs.",
    "mean_t2": "Mean at T2 over complete pairs.",
    "mean_diff": "mean_t2 - mean_t1.",
    "ci_low": "Lower bound of the 95% t confidence interval of the mean difference.",
    "ci_high": "Upper bound of the 95% t confidence interval of the mean difference.",
    "t": "Paired t statistic (weighted: one-sample t of differences with weights).",
    "p_t": "Two-sided p-value of the paired t-test.",
    "p_wilcoxon": "Two-sided p-value of the Wilcoxon signed-rank test (zeros dropped).",
    "d_z": "Standardised mean difference of paired data, Hedges-corrected.",
    "p_holm": "p_t adjusted by Holm across the poll's items (same arm, subgroup, weighting).",
    "p_bh": "p_t adjusted by Benjamini-Hochberg across the poll's items.",
    "pct_oppose_t1": "Percent below the scale midpoint at T1 (of all who answered, DK included, "
    "or of the complete pairs: see population_t1).",
    "pct_neutral_t1": "Percent at the scale midpoint at T1.",
    "pct_support_t1": "Percent above the scale midpoint at T1.",
    "pct_dk_t1": "Percent answering don't know at T1.",
    "pct_oppose_t2": "Percent below the scale midpoint at T2.",
    "pct_neutral_t2": "Percent at the scale midpoint at T2.",
    "pct_support_t2": "Percent above the scale midpoint at T2.",
    "pct_dk_t2": "Percent answering don't know at T2.",
    "population_t1": "Whom the T1 percentages describe: 'answered' (all who answered at T1) or "
    "'pairs' (the complete pairs, where 1..k-1 answered without being one; see the codebook).",
    "population_t2": "As population_t1, for T2.",
    "var_t1": "Variance at T1 (complete pairs).",
    "var_t2": "Variance at T2 (complete pairs).",
    "agreement_t1": "van der Eijk agreement A at T1, -1 to 1.",
    "agreement_t2": "van der Eijk agreement A at T2.",
    "consensus_t1": "Tastle-Wierman consensus at T1, 0 to 1.",
    "consensus_t2": "Tastle-Wierman consensus at T2.",
}

DID = {
    "item": "Question key of the paired item.",
    "subgroup": "Breakdown question key; empty for the whole sample.",
    "subgroup_value": "The subgroup's answer; empty for the whole sample.",
    "n_treatment": "Complete pairs in the treatment arm.",
    "n_control": "Complete pairs in the control arm.",
    "change_treatment": "Mean change (T2 - T1) in the treatment arm.",
    "change_control": "Mean change (T2 - T1) in the control arm.",
    "did": "Difference in differences: change_treatment - change_control.",
    "ci_low": "Lower bound of the 95% Welch confidence interval of did.",
    "ci_high": "Upper bound of the 95% Welch confidence interval of did.",
    "p_welch": "Two-sided p-value of Welch's t-test on change scores, treatment vs control.",
}

GAPS = {
    "item": "Question key of the paired item.",
    "subgroup": "Breakdown question key.",
    "value_a": "First subgroup value compared.",
    "value_b": "Second subgroup value compared.",
    "gap_t1": "mean_A - mean_B at T1.",
    "gap_t2": "mean_A - mean_B at T2.",
    "gap_change": "abs(gap_t2) - abs(gap_t1); negative when the groups converged.",
    "p_welch": "Two-sided p-value of Welch's t-test of change scores, A vs B.",
}

TABLES = {"items": ITEMS, "did": DID, "gaps": GAPS}
