class StigmerStore:
    pass
