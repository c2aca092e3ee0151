"""The model core, without Ray: what the model sees (tokenizer), micro-batching, the forward
pass and pooling, compact vectors; it runs alone on a bare GPU box."""
