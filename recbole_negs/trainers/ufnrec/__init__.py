"""UFNRec (Liu et al. 2022): false-negative mining, label reversing and the mean teacher, as one trainer."""
