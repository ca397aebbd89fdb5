"""Infrastructure every layer above uses: storage (local or gs://), deterministic writers,
the dataset-version layout and store, and the accounting of what every stage read, kept and rejected.

It imports nothing of the project but `schemas`, so transforms, tokenizer training and the
trainer can write into a version without reaching up into the CLI's package.

Importing it, or any module of it, changes nothing in the process: the process-wide settings
are applied by explicit calls (`infra.runtime`).
"""
