"""Every stage's name, declared once.

A name is what a stage's tallies, rejections and manifest counts carry (`counts["license"]`,
a `Rejected` of stage `read`), so it is part of the output's format. The stages set theirs
from here (`stage = stage_names.LICENSE`), and the run's checks name the stages they
chain from here too; nothing spells a stage name as a string literal.

In the bottom layer so that every layer may import it: transforms (the record stages),
tokenizer_training (tokenizer, binarize), pipeline (the run's stages and its checks).
"""

from __future__ import annotations

# The record stages of the corpus graph, in the order a code file meets them.
READ = "read"  # every code source: local trees, crawls, BigQuery, published datasets
LICENSE = "license"
LANGUAGE = "language"
NOTEBOOKS = "notebooks"
DECONTAMINATION = "decontamination"
FILTERS = "filters"
DEDUP = "dedup"
NEAR_DEDUP = "near-dedup"
SCRUB = "scrub"
FORMAT = "format"
# StackOverflow's chains: posts and comments read and joined, then threads formatted.
STACKOVERFLOW_READ = "stackoverflow-read"
STACKOVERFLOW_JOIN = "stackoverflow-join"
STACKOVERFLOW_FORMAT = "stackoverflow-format"

# The run's stages (`run --stages`), in order; tokenizer and binarize also tally under their names.
CORPUS = "corpus"
TOKENIZER = "tokenizer"
BINARIZE = "binarize"
TRAIN = "train"
RUN_STAGES = (CORPUS, TOKENIZER, BINARIZE, TRAIN)

CORPUS_STAGES = (
    READ,
    LICENSE,
    LANGUAGE,
    NOTEBOOKS,
    DECONTAMINATION,
    FILTERS,
    DEDUP,
    NEAR_DEDUP,
    SCRUB,
    FORMAT,
    STACKOVERFLOW_READ,
    STACKOVERFLOW_JOIN,
    STACKOVERFLOW_FORMAT,
)
COUNTED_STAGES = (*CORPUS_STAGES, BINARIZE)  # the stages whose tallies land in the manifest's counts
