"""Search over a StepScorer (greedy, beam, n-best), hypotheses, token tables, decoder memory rows,
hotword and LM fusion. Torch-free."""
