import skyloft

app = skyloft.App("hello")


@app.function()
def square(x):
    print("This code is running on a remote worker!")
    return x ** 2


@app.local_entrypoint()
def main():
    print("the square is", square.remote(42))
    print(sum(square.map(range(1000))))
