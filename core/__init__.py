"""Small pieces shared by train.py, evaluate.py and the packages: errors and run files."""
