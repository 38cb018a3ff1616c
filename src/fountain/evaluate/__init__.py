"""`fountain evaluate`: fine-tune a small causal LM on a dataset's train split and measure held-out
loss and perplexity before and after."""
