# saelib
