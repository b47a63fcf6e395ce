"""The eval: question sets with gold evidence written from the articles, systems to run them
through, and scores decided by that evidence rather than by the answer path's own rules
(answers, citations, abstention, quotes, retrieval, latency)."""
