"""The local source: a directory of repositories, each a plain folder or a git repository."""
