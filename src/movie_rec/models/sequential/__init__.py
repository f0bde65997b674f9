"""Sequential recommenders (GRU4Rec, SASRec, BERT4Rec, SRGNN, S3Rec) and their toolkit."""
