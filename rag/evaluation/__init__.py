"""The eval: a question set written from the articles, systems to run it through, and the
scores (answers, citations in the sense of ALCE, abstention, retrieval, latency)."""
