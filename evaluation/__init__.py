"""ecgmon.evaluation: the evaluation protocols, each driving the live pipeline (product/UCR metrics, EC57
records, cross-validation), and the ground-truth sink."""
