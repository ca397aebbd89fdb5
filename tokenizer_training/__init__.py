"""BPE tokenizer training, tokenizer packaging, binarization into shards, and the shard reader."""
