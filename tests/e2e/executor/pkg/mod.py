# A module in a package of the WorkingDir: "pkg.mod:twice".
def twice(x):
    return x * 2
