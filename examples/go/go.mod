module example.com/llmvcr-recipe

go 1.19
