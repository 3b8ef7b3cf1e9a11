print("datadist")
