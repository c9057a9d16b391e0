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

# Which answers each kind of column counts. A missing answer has a kind (results.stats
# MISSING_KINDS): don't know, refused and skipped were put to the participant, not asked was not.
MISSING_KINDS_RULE = (
    "Missing kinds: don't know, refused and skipped count in a wave's n and in the shares over "
    "all answers (pct_oppose/neutral/support/dk/refused/skipped, which sum to 100); not asked "
    "counts nowhere. The *_valid_* shares count substantive answers only (oppose + neutral + "
    "support = 100). Means, tests, variances and every paired measure use complete pairs (a "
    "substantive answer at both waves): no missing kind enters them."
)
# The family of an item without its own ``family:``: Holm and BH adjust within a family only.
OPTIONS_FAMILY = "options"
OTHER_FAMILY = "other"


def _share(side: str, wave: int, rule: str) -> str:
    return f"Percent {side} at T{wave} {rule}."


_ALL_ANSWERS = "of all who answered (don't know, refused, skipped included; see population_t{w})"
_VALID = "of the substantive answers only (missing kinds left out; see population_t{w})"
_SIDES = {
    "oppose": "below the scale midpoint",
    "neutral": "at the scale midpoint",
    "support": "above the scale midpoint",
}
_MISSING_SHARES = {"dk": "answering don't know", "refused": "refusing", "skipped": "skipping"}


def _wave_shares(wave: int) -> dict[str, str]:
    rule = _ALL_ANSWERS.format(w=wave)
    shares = {f"pct_{name}_t{wave}": _share(side, wave, rule) for name, side in _SIDES.items()}
    shares.update(
        {f"pct_{name}_t{wave}": _share(what, wave, rule) for name, what in _MISSING_SHARES.items()}
    )
    return shares


def _valid_shares(wave: int) -> dict[str, str]:
    rule = _VALID.format(w=wave)
    return {f"pct_{name}_valid_t{wave}": _share(side, wave, rule) for name, side in _SIDES.items()}


ITEMS = {
    "item": "Question key of the paired item (ratings of options and other paired ratings).",
    "family": f"The item's multiple-comparison family: the question's own family, else "
    f"'{OPTIONS_FAMILY}' for ratings of options and '{OTHER_FAMILY}' for other paired items.",
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
    "p_holm": "p_t adjusted by Holm within the item's family (same arm, subgroup, weighting).",
    "p_bh": "p_t adjusted by Benjamini-Hochberg within the item's family.",
    **_wave_shares(1),
    **_wave_shares(2),
    **_valid_shares(1),
    **_valid_shares(2),
    "population_t1": "Whom the T1 percentages describe: 'answered' (all who answered at T1) or "
    "'pairs' (the complete pairs, where 1..k-1 answered without being one; see the codebook). "
    + MISSING_KINDS_RULE,
    "population_t2": "As population_t1, for T2.",
    "var_t1": "Variance at T1 (complete pairs).",
    "var_t2": "Variance at T2 (complete pairs).",
    "agreement_t1": "van der Eijk agreement A at T1, -1 to 1.",
    "agreement_t2": "van der Eijk agreement A at T2.",
    "consensus_t1": "Tastle-Wierman consensus at T1, 0 to 1.",
    "consensus_t2": "Tastle-Wierman consensus at T2.",
}

# The value of the ``test`` column of the did and gaps tables: the test behind their p-value and
# confidence interval, named in each row so a reader never has to guess it.
WELCH_TEST = "welch_t_change_scores"
TEST = (
    f"The test behind p_welch, t_welch, df_welch, ci_low and ci_high: '{WELCH_TEST}' (Welch's "
    "unequal-variance t-test comparing the two groups' change scores T2 - T1 over complete "
    "pairs, scipy.stats.ttest_ind(equal_var=False))."
)

DID = {
    "item": "Question key of the paired item.",
    "subgroup": "Breakdown question key; empty for the whole sample.",
    "subgroup_value": "The subgroup's answer; empty for the whole sample.",
    "n_treatment": "Complete pairs in the treatment arm.",
    "n_control": "Complete pairs in the control arm.",
    "mean_t1_treatment": "Mean at T1 of the treatment arm's complete pairs.",
    "mean_t2_treatment": "Mean at T2 of the treatment arm's complete pairs.",
    "mean_t1_control": "Mean at T1 of the control arm's complete pairs.",
    "mean_t2_control": "Mean at T2 of the control arm's complete pairs.",
    "change_treatment": "Mean change (T2 - T1) in the treatment arm.",
    "change_control": "Mean change (T2 - T1) in the control arm.",
    "did": "Difference in differences: change_treatment - change_control.",
    "ci_low": "Lower bound of the 95% Welch confidence interval of did.",
    "ci_high": "Upper bound of the 95% Welch confidence interval of did.",
    "t_welch": "Welch t statistic of did.",
    "df_welch": "Welch-Satterthwaite degrees of freedom.",
    "p_welch": "Two-sided p-value of Welch's t-test on change scores, treatment vs control.",
    "test": TEST,
}

GAPS = {
    "item": "Question key of the paired item.",
    "arm": "Whose gap: 'treatment' when the poll has a treatment arm (gaps are about "
    "deliberation), else 'all'.",
    "subgroup": "Breakdown question key.",
    "value_a": "First subgroup value compared (a choice key, or a range of a number question's "
    "bins).",
    "value_b": "Second subgroup value compared.",
    "n_a": "Complete pairs in subgroup A.",
    "n_b": "Complete pairs in subgroup B.",
    "mean_t1_a": "Mean of A at T1 (complete pairs).",
    "mean_t2_a": "Mean of A at T2 (complete pairs).",
    "mean_t1_b": "Mean of B at T1 (complete pairs).",
    "mean_t2_b": "Mean of B at T2 (complete pairs).",
    "gap_t1": "mean_t1_a - mean_t1_b.",
    "gap_t2": "mean_t2_a - mean_t2_b.",
    "gap_change": "abs(gap_t2) - abs(gap_t1); negative when the groups converged.",
    "change_a": "Mean change (T2 - T1) in A.",
    "change_b": "Mean change (T2 - T1) in B.",
    "diff_change": "change_a - change_b = gap_t2 - gap_t1 (the signed change of the gap).",
    "ci_low": "Lower bound of the 95% Welch confidence interval of diff_change.",
    "ci_high": "Upper bound of the 95% Welch confidence interval of diff_change.",
    "t_welch": "Welch t statistic of diff_change.",
    "df_welch": "Welch-Satterthwaite degrees of freedom.",
    "p_welch": "Two-sided p-value of Welch's t-test of change scores, A vs B.",
    "test": TEST,
}

# The item of the knowledge index's rows (question keys start with a letter: never a collision).
KNOWLEDGE_INDEX = "_knowledge_index"
# A rating scale collapsed to three answers (the transition columns of item_details).
COLLAPSED = ("oppose", "neutral", "support")

# The values of population_t1/_t2: which people a wave's columns (n, shares, distribution)
# describe in a row: everyone who answered at that wave, or, where that would single out the
# few outside the pairs, the pairs.
ANSWERED = "answered"
PAIRS = "pairs"
POPULATION = (
    f"Whom the wave's n, percentage and distribution columns describe: '{ANSWERED}' (everyone "
    f"who answered at that wave, don't know, refused and skipped included) or '{PAIRS}' (the "
    "complete pairs; pct_dk, pct_refused and pct_skipped 0), "
    "where 1..k-1 answered that wave without being a complete pair (see the codebook)."
)

# The tables beyond items, did and gaps, each a list of rows with exactly these columns.
ITEM_DETAILS: dict[str, str] = {
    "item": "Question key.",
    "arm": "all, treatment or control.",
    "subgroup": "As in items.",
    "subgroup_value": "As in items.",
    "weighted": "As in items.",
    "n_t1": "Participants who answered at T1 (don't know, refused and skipped included), or "
    "complete pairs: see population_t1.",
    "n_t2": "Participants who answered at T2 (as n_t1), or complete pairs: see population_t2.",
    "population_t1": "T1: " + POPULATION,
    "population_t2": "T2: " + POPULATION,
    "df": "Degrees of freedom of the paired t-test.",
    "rank_biserial": "Matched-pairs rank-biserial correlation (W+ - W-)/(W+ + W-).",
    "gross_change": "Mean absolute change over complete pairs.",
    "share_changed": "Share (0..1) of complete pairs whose answer changed.",
    "share_crossed": "Share (0..1) moving between oppose and support.",
    "sd_t1": "Standard deviation at T1 (complete pairs).",
    "sd_t2": "Standard deviation at T2.",
    "polarization_t1": "(1 - agreement_t1) / 2.",
    "polarization_t2": "(1 - agreement_t2) / 2.",
    "bimodality_t1": "Bimodality coefficient at T1 (> 5/9 suggests bimodality).",
    "bimodality_t2": "Bimodality coefficient at T2.",
    "p_mcnemar": "Exact McNemar test of support vs not support, T1 vs T2.",
    "p_stuart_maxwell": "Stuart-Maxwell test of marginal homogeneity of the 3x3 table.",
    **{
        f"transition_{a}_{b}": f"Complete pairs at {a} at T1 and {b} at T2 (count)."
        for a in COLLAPSED
        for b in COLLAPSED
    },
}

DISTRIBUTIONS: dict[str, str] = {
    "item": "Question key.",
    "arm": "all, treatment or control.",
    "subgroup": "As in items.",
    "subgroup_value": "As in items.",
    "weighted": "As in items.",
    "wave": "1 (T1) or 2 (T2).",
    "value": "Scale point.",
    "pct": "Percent of the population giving this value (don't know, refused and skipped "
    "count in the denominator).",
    "pct_valid": "Percent of the population's substantive answers giving this value.",
    "population": POPULATION,
}

KNOWLEDGE: dict[str, str] = {
    "item": f"Knowledge question key, or {KNOWLEDGE_INDEX} for the number correct.",
    "arm": "all, treatment or control.",
    "subgroup": "As in items.",
    "subgroup_value": "As in items.",
    "weighted": "As in items.",
    "n_items": "Knowledge questions counted (1 for an item row).",
    "n_t1": "Participants asked at T1 (don't know, refused and skipped count as asked and not "
    "correct; not asked does not count), or asked at both waves: see population_t1.",
    "n_t2": "Participants asked at T2, or asked at both waves: see population_t2.",
    "population_t1": "T1: " + POPULATION,
    "population_t2": "T2: " + POPULATION,
    "n_pairs": "Participants asked at both waves.",
    "mean_t1": "Mean number correct at T1 over pairs (item rows: share correct, 0..1).",
    "mean_t2": "Mean number correct at T2 over pairs.",
    "mean_diff": "mean_t2 - mean_t1.",
    "ci_low": "Lower bound of the 95% t confidence interval of mean_diff.",
    "ci_high": "Upper bound of the 95% t confidence interval of mean_diff.",
    "t": "Paired t statistic.",
    "p_t": "Two-sided p-value of the paired t-test.",
    "d_z": "Hedges-corrected standardised mean difference of paired data.",
    "pct_correct_t1": "Percent correct at T1 among the population (index: mean over items, "
    "empty unless every item and the index describe those asked).",
    "pct_correct_t2": "Percent correct at T2 among the population.",
}

# The flat tables, one list of rows each, by name: the API serves each with its columns in this
# order (jsonb keeps no key order), and the data package writes and describes one file of each.
# Live deliberation (results.compute.deliberation, formulas in results.stats.deliberation): one
# row per shown room (and pooled over them) and scope, then its subgroups; one row per member.
_SCOPE = (
    "The paired rating question of the option discussed (messages while the room was on that "
    "agenda item); empty for the whole session."
)
_REASONS = (
    "Messages giving a reason for the author's own T1 side on the option (the other side: "
    "n_reasons_other): a message sharing at least 2 words of 4 or more letters with one of the "
    "briefing's arguments for a side, and more than with any argument of the other side, argues "
    "for that side (a lexical lower bound; see results.stats.deliberation.reason_stance)."
)
DELIBERATION_ROOMS: dict[str, str] = {
    "room": "The room's small-group number (participants' group); empty: the shown rooms pooled. "
    "A room of fewer members than the poll's minimum subgroup size k has no rows; a subgroup "
    "split is shown only where each of its cells (members without an answer included) holds "
    "none or at least k members, pooled also over the rooms where it was withheld.",
    "item": _SCOPE,
    "subgroup": "Breakdown question key (whole-session rows) or t1_side (the members' side on "
    "the option at T1); empty for the whole room.",
    "subgroup_value": "The subgroup's answer, or oppose/neutral/support (below, at, above the "
    "scale midpoint).",
    "n_members": "Members seated in the room (or subgroup), removed members included.",
    "n_speakers": "Members who wrote at least one message.",
    "n_messages": "Members' messages (the moderator's excluded; hidden ones included).",
    "n_words": "Words in those messages.",
    "n_hidden": "Of those, messages hidden by flags or by an organiser.",
    "share_spoke": "n_speakers / n_members.",
    "gini_words": "Gini coefficient of words across members, 0 (equal) to (m-1)/m (one member "
    "wrote everything).",
    "word_share": "Subgroup rows: the subgroup's share (0..1) of the room's words.",
    "member_share": "Subgroup rows: the subgroup's share (0..1) of the room's members.",
    "participation_ratio": "word_share / member_share: 1 proportional, below 1 under-heard.",
    "n_replies": "Messages replying to another member's message.",
    "reply_share": "n_replies / n_messages.",
    "n_replies_sided": "Replies on an option where the author and the replied-to member both "
    "had a side (below or above the midpoint) at T1.",
    "cross_cutting_share": "Share of n_replies_sided replying to a member on the other side.",
    "n_reasons_own": _REASONS,
    "n_reasons_other": "Messages giving a reason for the other side (rule as n_reasons_own).",
    "n_written_reasons_own": "Reasons written in the reasons form (mode 'both') whose stated "
    "stance is the author's T1 side.",
    "n_written_reasons_other": "Written reasons whose stated stance is the other side.",
    "n_pairs": "Members with a complete pair on the item (empty under the minimum size); pooled: "
    "summed over the rooms shown.",
    "sd_t1": "Standard deviation (ddof 1) of the members' ratings at T1; pooled: mean over rooms.",
    "sd_t2": "The same at T2.",
    "sd_change": "sd_t2 - sd_t1: negative when the room's opinions moved closer together.",
}
DELIBERATION_MEMBERS: dict[str, str] = {
    "room": "The room's small-group number.",
    "pseudonym": "The member's pseudonym in the room (never the participant id).",
    "item": _SCOPE,
    "t1_side": "-1 below, 0 at, 1 above the scale midpoint at T1; empty without an answer.",
    "removed": "1 when an organiser removed the member from the room.",
    "word_share": "The member's share (0..1) of the room's words in the scope.",
    "n_messages": "Messages written (hidden ones included).",
    "n_words": "Words written.",
    "n_replies": "Replies to another member's message.",
    "n_replies_sided": "Replies where both had a side on the option at T1.",
    "n_reasons_own": "Reasons for their own T1 side (rule in deliberation_rooms).",
    "n_reasons_other": "Reasons for the other side.",
    "n_cross_cutting": "Replies to a member on the other side at T1.",
    "n_hidden": "Messages hidden.",
    "n_written_reasons_own": "Written reasons (mode 'both') for their own T1 side.",
    "n_written_reasons_other": "Written reasons for the other side.",
}
# The Deliberative Reason Index (results.compute.dri, formulas in results.stats.dri; the
# codebook's METHODS["dri"] says how to read it): one row per arm x small group x wave, and the
# change T1 -> T2 with a paired test in dri_change (one row per arm x small group).
_DRI_PEOPLE = (
    "Participants taking part: every consideration rated and every option ordered at both "
    "waves (the same people at T1 and T2)."
)
DRI: dict[str, str] = {
    "arm": "all, treatment or control.",
    "group": "Small-group number within the arm; empty for the whole arm (every pair of the "
    "arm's participants, across groups). A group or arm under the poll's minimum subgroup size "
    "k, or withheld with one, has no rows.",
    "wave": "1 (T1) or 2 (T2).",
    "n": _DRI_PEOPLE,
    "pairs": "Pairs of participants counted: both correlations defined.",
    "pairs_left_out": "Pairs left out because a correlation is undefined (one of the two gave "
    "the same value to every consideration, or to every option); pairs + pairs_left_out = "
    "n (n - 1) / 2.",
    "dri": "Deliberative Reason Index over the counted pairs: (lambda - 2 mean d) / lambda, "
    "d = |r_C - r_P| / sqrt(2), lambda = sqrt(2) / 2, with r_C and r_P the pair's Spearman "
    "correlations of considerations ratings and of preference orderings; 1 = every pair's "
    "agreement on considerations matches its agreement on preferences. Over more than "
    "12,500,000 pairs (an arm of about 5,000 or more), estimated from a fixed-seed random "
    "sample of 500,000 of them (standard error about 0.001; meta.dri.sampled lists those rows).",
}
DRI_CHANGE: dict[str, str] = {
    "arm": "all, treatment or control.",
    "group": "As in dri.",
    "n": _DRI_PEOPLE,
    "dri_t1": "The group's DRI at T1 (as in dri).",
    "dri_t2": "The group's DRI at T2.",
    "dri_change": "dri_t2 - dri_t1.",
    "n_individual": "Participants with an individual DRI at both waves (at least one counted "
    "pair each time).",
    "mean_individual_t1": "Mean individual DRI at T1: a participant's DRI over their pairs with "
    "the others of their small group (of their arm when in no group).",
    "mean_individual_t2": "Mean individual DRI at T2.",
    "mean_diff": "Mean of the participants' changes in individual DRI, T2 - T1.",
    "ci_low": "Lower bound of the 95% t confidence interval of mean_diff.",
    "ci_high": "Upper bound of the 95% t confidence interval of mean_diff.",
    "t": "Paired t statistic of individual DRI, T2 against T1.",
    "df": "Degrees of freedom, n_individual - 1.",
    "p": "Two-sided p-value of the paired t-test.",
    "test": "The test behind t, p and the interval: 'paired_t_individual_dri' "
    "(scipy.stats.ttest_rel of individual DRI at T2 and T1).",
}
# Tables of individual rows (pseudonymous): served to microdata grants only.
MICRODATA_TABLES = ("deliberation_members",)

TABLES = {
    "items": ITEMS,
    "did": DID,
    "gaps": GAPS,
    "knowledge": KNOWLEDGE,
    "deliberation_rooms": DELIBERATION_ROOMS,
    "deliberation_members": DELIBERATION_MEMBERS,
    "dri": DRI,
    "dri_change": DRI_CHANGE,
}

OPTIONS: dict[str, dict[str, str]] = {
    "summary": {
        "arm": "all, treatment or control.",
        "n_participants": "Participants in the arm.",
        "kendall_tau": "Kendall tau-b between the T1 and T2 orders of options by mean rating.",
        "kendall_p": "Two-sided p-value of kendall_tau.",
        "axis": "The poll's axis (option keys, space-separated) used for single-peakedness.",
        "n_migration": "Participants placed in an opinion group at both waves.",
    },
    "rankings": {
        "arm": "all, treatment or control.",
        "option": "Option key.",
        "axis": "The option's place on the poll's axis.",
        "n_t1": "Participants rating the option at T1 (or its complete pairs: population_t1).",
        "n_t2": "Participants rating the option at T2 (or its complete pairs: population_t2).",
        "mean_t1": "Mean rating at T1.",
        "mean_t2": "Mean rating at T2.",
        "rank_t1": "Place by the published mean_t1 (1 = highest).",
        "rank_t2": "Place by the published mean_t2.",
        "population_t1": "'answered': everyone rating the option at T1; 'pairs': its item's "
        "complete pairs, where 1..k-1 rated it at T1 only (as in the items table).",
        "population_t2": "As population_t1, at T2.",
    },
    "borda": {
        "arm": "all, treatment or control.",
        "option": "Option key.",
        "n_rankings_t1": "Complete rankings at T1.",
        "n_rankings_t2": "Complete rankings at T2.",
        "borda_t1": "Mean Borda points at T1 (best m-1 ... worst 0).",
        "borda_t2": "Mean Borda points at T2.",
    },
    "pairwise": {
        "arm": "all, treatment or control.",
        "wave": "1 or 2.",
        "option_a": "Option key.",
        "option_b": "Option key.",
        "n_prefer_a": "Participants ranking option_a above option_b.",
    },
    "condorcet": {
        "arm": "all, treatment or control.",
        "wave": "1 or 2.",
        "n_rankings": "Complete rankings.",
        "winner": "Condorcet winner (beats every other option by majority); null if none.",
        "majority_cycle": "true when the majority relation has a cycle.",
        "cycles": "Options in each majority cycle, space-separated; cycles separated by ' | '.",
    },
    "single_peakedness": {
        "arm": "all, treatment or control.",
        "wave": "1 or 2.",
        "n_rankings": "Complete rankings.",
        "share_axis": "Share (0..1) of rankings single-peaked on the poll's axis.",
        "share_best": "Largest share single-peaked on any one ordering of the options.",
        "best_axis": "The ordering attaining share_best (space-separated option keys).",
        "n_best_axes": "Orderings tying for share_best.",
    },
    "opinion_groups": {
        "arm": "all, treatment or control.",
        "wave": "1 or 2.",
        "k": "Number of groups chosen by silhouette.",
        "silhouette": "Silhouette score of the chosen k.",
        "group": "Group number (0 = largest).",
        "size": "Participants in the group.",
        "pc1": "Group centroid on the first principal component.",
        "pc2": "Group centroid on the second principal component.",
    },
    "opinion_group_centroids": {
        "arm": "all, treatment or control.",
        "wave": "1 or 2.",
        "group": "Group number.",
        "option": "Option key.",
        "mean_rating": "The group's mean rating of the option.",
    },
    "migration": {
        "arm": "all, treatment or control.",
        "group_t1": "Opinion group at T1.",
        "group_t2": "Opinion group at T2 (clustered separately: numbers are not matched).",
        "n": "Participants moving from group_t1 to group_t2.",
    },
}

SMALL_GROUPS: dict[str, dict[str, str]] = {
    "summary": {
        "item": "Question key of the paired rating item.",
        "arm": "treatment or control (groups are numbered within an arm).",
        "n_participants": "Group members with complete pairs.",
        "n_groups": "Groups counted (at least the minimum subgroup size).",
        "mean_homogenization": "Mean over groups of Var_T2 - Var_T1 (negative: more alike).",
        "t_homogenization": "One-sample t of homogenization against 0.",
        "p_homogenization": "Two-sided p-value.",
        "mean_polarization": "Mean over groups of sign(m_T1 - midpoint) (m_T2 - m_T1).",
        "t_polarization": "One-sample t of polarization against 0.",
        "p_polarization": "Two-sided p-value.",
    },
    "groups": {
        "item": "Question key.",
        "arm": "treatment or control.",
        "group": "Small-group number within the arm.",
        "n": "Members with complete pairs.",
        "mean_t1": "Group mean at T1.",
        "mean_t2": "Group mean at T2.",
        "var_t1": "Group variance at T1.",
        "var_t2": "Group variance at T2.",
        "homogenization": "var_t2 - var_t1.",
        "polarization": "sign(mean_t1 - midpoint) (mean_t2 - mean_t1).",
    },
}

# Every table beyond items, did and gaps by the name the payload's meta lists it under (the
# codebook documents them from there).
EXTRA_COLUMNS: dict[str, dict[str, str]] = {
    "item_details": ITEM_DETAILS,
    "distributions": DISTRIBUTIONS,
    "knowledge": KNOWLEDGE,
    **{f"options.{name}": columns for name, columns in OPTIONS.items()},
    **{f"options.small_groups.{name}": columns for name, columns in SMALL_GROUPS.items()},
}
