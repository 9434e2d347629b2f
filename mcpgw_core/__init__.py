"""Protocol core shared by the operator and the callback service: API types and OAuth logic."""
