"""Sources: each yields `RepoFile` records (and `Rejected` ones) into the same graph."""
