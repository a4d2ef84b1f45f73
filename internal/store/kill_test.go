package store

const childEnv = "TOLLGUARD_STORE_CHILD"

func runChild() int { return 0 }
