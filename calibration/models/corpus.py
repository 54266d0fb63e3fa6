"""Embedded English text: trains the tiny tokenizer and serves as offline calibration/evaluation data."""

from __future__ import annotations

import random

SENTENCES: tuple[str, ...] = (
    "The river runs past the old mill and turns toward the sea before the town wakes up.",
    "A quantized model stores its weights as small integers and a scale for every channel.",
    "She opened the window, listened to the rain, and wrote three pages before breakfast.",
    "Large language models predict the next word from the words that came before it.",
    "The bakery on the corner sells bread in the morning and soup in the afternoon.",
    "When the train was late, the passengers waited on the platform and talked about the weather.",
    "Every matrix multiplication in a transformer reads activations and writes new ones.",
    "Outlier channels carry values that are a hundred times larger than their neighbours.",
    "He planted tomatoes, beans and sunflowers in the garden behind the house.",
    "The committee met on Tuesday to discuss the budget for the coming year.",
    "A smooth factor moves difficulty from the activations into the weights of a layer.",
    "The children built a castle of sand and watched the tide wash it away.",
    "Mountains in the north stay white with snow until the middle of summer.",
    "The library keeps maps of the city drawn two hundred years ago.",
    "Integer arithmetic is fast on modern processors because many values fit in one register.",
    "The cat slept on the warm stones while the dog chased leaves across the yard.",
    "Scientists measured the temperature of the lake every hour for a whole month.",
    "A good recipe lists the ingredients first and the steps in the order you need them.",
    "The server answered thousands of requests per second without dropping a single one.",
    "After the storm, the fishermen repaired their nets and counted the broken boats.",
    "Music drifted from the open door of the hall where the orchestra was rehearsing.",
    "The teacher asked the students to explain the answer in their own words.",
    "Prices of apples rose in the spring because the winter had been so cold.",
    "The old bridge was closed for repairs, so the cars took the long road around the hill.",
    "Calibration runs a few hundred samples through the network and records the largest values.",
    "The museum opened a new room for paintings of ships and harbours.",
    "She learned to play the violin at seven and joined the city orchestra at twenty.",
    "Clouds gathered over the valley and the first drops fell on the dry fields.",
    "A careful engineer checks the numbers twice before she writes them in the report.",
    "The market was full of voices, colours and the smell of fresh herbs.",
    "Each layer normalizes its input before the attention and the feed forward blocks.",
    "The ship left the harbour at dawn and reached the island after two days at sea.",
    "Grandfather told stories about the winter when the whole river froze solid.",
    "The new road connects the village to the city in less than an hour.",
    "Birds returned to the marsh in April and built their nests among the reeds.",
    "Rounding to the nearest even number avoids a bias when many values sit halfway.",
    "The doctor listened carefully and wrote a short note for the pharmacist.",
    "On clear nights the astronomers pointed the telescope at distant galaxies.",
    "The workshop smelled of wood, glue and the oil used to keep the tools from rusting.",
    "A per token scale adapts to each row, while a per tensor scale is shared by all rows.",
    "The football match ended in a draw after a long and tiring second half.",
    "Volunteers cleaned the beach and collected twelve bags of plastic in one morning.",
    "Her letter arrived a week late, but the news inside was still good.",
    "The factory switched to solar power and cut its electricity bill in half.",
    "Students in the chemistry lab mixed two clear liquids and watched them turn blue.",
    "The baker woke at four every morning to light the oven and shape the loaves.",
    "In the evening the square filled with families walking and eating ice cream.",
    "The compiler turned the loop into vector instructions that process sixteen numbers at once.",
    "Snow covered the roofs, and smoke rose slowly from every chimney in the street.",
    "The map showed a path through the forest to a lake that nobody had visited in years.",
    "A bright comet appeared in the sky and stayed visible for almost two weeks.",
    "The quiet student surprised everyone by winning the national mathematics prize.",
    "Trade between the two ports grew as merchants learned each other's languages.",
    "The engine hummed steadily as the plane climbed above the clouds.",
    "Fresh paint made the small kitchen look larger and brighter than before.",
    "The gardener pruned the roses in late winter so they would bloom in June.",
)


def sample_texts(n: int, *, seed: int = 0, sentences_per_text: int = 6) -> list[str]:
    """Return `n` deterministic pseudo-documents, each a few embedded sentences in shuffled order."""
    if n < 0:
        raise ValueError(f"sample_texts: n must be >= 0, got {n}")
    rng = random.Random(seed)
    return [" ".join(rng.sample(SENTENCES, sentences_per_text)) for _ in range(n)]
