// Placeholder until the CLI is wired (see gateway/src/app.cpp).
int main() { return 0; }
