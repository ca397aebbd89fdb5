"""StackOverflow: the dump read, posts and comments joined into threads, selected and formatted."""
