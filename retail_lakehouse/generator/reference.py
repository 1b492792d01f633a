"""Contract constants and the reference vocabularies the generator draws from.

Everything here is a tuple or a dict literal, so iteration order is fixed and no draw depends on
hashing. Every name in the vocabularies matches `[A-Z][a-z]+` so that a messy name is always
recognisable as one.
"""

from __future__ import annotations

from retail_lakehouse.sources import SOURCE_COLUMNS

CSV_SOURCES: tuple[str, ...] = tuple(SOURCE_COLUMNS)

# Stamps (hhmmss) of the drops of one business date.
REGULAR_STAMP = "230000"
LATE_SALES_STAMP = "233000"
MALFORMED_STAMP = "235000"
# POS micro-batches: each batch holds the events of the six hours up to its stamp.
POS_BATCH_STAMPS: tuple[str, ...] = ("060000", "120000", "180000", "235959")

CHANNELS: tuple[str, ...] = ("Online", "Store", "Mobile")
CHANNEL_WEIGHTS: tuple[float, ...] = (0.45, 0.40, 0.15)
# Raw spellings of each channel as the source systems deliver them; the first is canonical.
CHANNEL_VARIANTS: dict[str, tuple[str, ...]] = {
    "Online": ("Online", "online", "ONLINE", " Web "),
    "Store": ("Store", "store", "In-Store", "POS"),
    "Mobile": ("Mobile", "mobile", "App", "Mobile App"),
}
CHANNEL_VARIANT_WEIGHTS: tuple[float, ...] = (0.70, 0.10, 0.10, 0.10)

# Rate = probability that one eligible row gets the defect. Eligibility is documented per kind in
# the package docstring (retail_lakehouse.generator); "every row" unless noted there.
DIRTY_RATES: dict[str, dict[str, float]] = {
    "customer": {
        "duplicate_row": 0.01,
        "null_customer_id": 0.005,
        "null_email": 0.005,
        "malformed_email": 0.01,
        "email_case_whitespace": 0.10,
        "invalid_age_group": 0.02,
        "invalid_gender": 0.02,
        "messy_phone": 0.20,
        "messy_postal_code": 0.10,
        "messy_name": 0.10,
        "duplicate_email": 0.005,
        "malformed_timestamp": 0.005,
    },
    "product": {
        "null_product_id": 0.005,
        "negative_price": 0.005,
        "duplicate_row": 0.005,
    },
    "sales_returns": {
        "duplicate_row": 0.005,
        "null_key": 0.005,
        "negative_quantity": 0.003,
        "unknown_product": 0.005,
        "malformed_timestamp": 0.003,
        "empty_discount_or_tax": 0.05,
    },
    "payment_refund": {
        "null_order_id": 0.003,
        "malformed_timestamp": 0.003,
        "refund_exceeds_amount": 0.02,
        "duplicate_row": 0.003,
    },
    "inventory": {"negative_quantity": 0.002},
    "loyalty": {"null_customer_id": 0.003, "negative_points": 0.002},
}

MALFORMED_KINDS: tuple[str, ...] = ("wrong_header", "wrong_delimiter", "not_utf8", "truncated")
# Sources whose rows carry a free-text column that can hold the non-UTF-8 name.
NOT_UTF8_COLUMN: dict[str, str] = {
    "customer": "name",
    "product": "brand",
    "sales_returns": "return_reason",
    "payment_refund": "refund_reason",
}
NOT_UTF8_TEXT: dict[str, str] = {
    "customer": "Jürgen Müller",
    "product": "Müller",
    "sales_returns": "Größe falsch (Müller)",
    "payment_refund": "Erstattung Müller",
}

# --- people and places -------------------------------------------------------------------------
FIRST_NAMES: tuple[str, ...] = (
    "James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "William",
    "Elizabeth", "David", "Barbara", "Richard", "Susan", "Joseph", "Jessica", "Thomas", "Sarah",
    "Charles", "Karen", "Christopher", "Nancy", "Daniel", "Lisa", "Matthew", "Betty", "Anthony",
    "Margaret", "Mark", "Sandra", "Donald", "Ashley", "Steven", "Kimberly", "Paul", "Emily",
    "Andrew", "Donna", "Joshua", "Michelle", "Kenneth", "Carol", "Kevin", "Amanda", "Brian",
    "Melissa", "George", "Deborah", "Timothy", "Stephanie", "Maria", "Jose", "Wei", "Priya",
    "Ahmed", "Sofia", "Lucas", "Chloe", "Mateo", "Aisha",
)
LAST_NAMES: tuple[str, ...] = (
    "Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez",
    "Martinez", "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor",
    "Moore", "Jackson", "Martin", "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez",
    "Clark", "Ramirez", "Lewis", "Robinson", "Walker", "Young", "Allen", "King", "Wright",
    "Scott", "Torres", "Nguyen", "Hill", "Flores", "Green", "Adams", "Nelson", "Baker", "Hall",
    "Rivera", "Campbell", "Mitchell", "Carter", "Roberts", "Patel", "Kim", "Chen", "Singh",
)
GENDERS: tuple[str, ...] = ("M", "F", "Other", "Prefer not to say")
GENDER_WEIGHTS: tuple[float, ...] = (0.48, 0.48, 0.02, 0.02)
AGE_GROUPS: tuple[str, ...] = ("18-25", "26-35", "36-45", "46-55", "56-65", "65+")
AGE_WEIGHTS: tuple[float, ...] = (0.15, 0.24, 0.22, 0.18, 0.12, 0.09)
SEGMENTS: tuple[str, ...] = ("Regular", "Premium", "VIP", "New")
# Segments of established customers; customers of the last 120 days are "New".
SEGMENT_WEIGHTS: tuple[float, ...] = (0.68, 0.25, 0.07, 0.0)

# (city, state, region, first three digits of its postal codes)
CITIES: tuple[tuple[str, str, str, str], ...] = (
    ("New York", "NY", "Northeast", "100"),
    ("Boston", "MA", "Northeast", "021"),
    ("Philadelphia", "PA", "Northeast", "191"),
    ("Pittsburgh", "PA", "Northeast", "152"),
    ("Newark", "NJ", "Northeast", "071"),
    ("Hartford", "CT", "Northeast", "061"),
    ("Atlanta", "GA", "Southeast", "303"),
    ("Miami", "FL", "Southeast", "331"),
    ("Orlando", "FL", "Southeast", "328"),
    ("Charlotte", "NC", "Southeast", "282"),
    ("Nashville", "TN", "Southeast", "372"),
    ("Richmond", "VA", "Southeast", "232"),
    ("Chicago", "IL", "Midwest", "606"),
    ("Detroit", "MI", "Midwest", "482"),
    ("Minneapolis", "MN", "Midwest", "554"),
    ("Columbus", "OH", "Midwest", "432"),
    ("Milwaukee", "WI", "Midwest", "532"),
    ("Kansas City", "MO", "Midwest", "641"),
    ("Houston", "TX", "Southwest", "770"),
    ("Dallas", "TX", "Southwest", "752"),
    ("Austin", "TX", "Southwest", "787"),
    ("Phoenix", "AZ", "Southwest", "850"),
    ("Albuquerque", "NM", "Southwest", "871"),
    ("Oklahoma City", "OK", "Southwest", "731"),
    ("Los Angeles", "CA", "West", "900"),
    ("San Francisco", "CA", "West", "941"),
    ("San Diego", "CA", "West", "921"),
    ("Seattle", "WA", "West", "981"),
    ("Portland", "OR", "West", "972"),
    ("Denver", "CO", "West", "802"),
    ("Las Vegas", "NV", "West", "891"),
    ("Salt Lake City", "UT", "West", "841"),
)
# Larger cities get more customers and stores.
CITY_WEIGHTS: tuple[float, ...] = (
    8, 3, 4, 2, 2, 1, 4, 4, 3, 3, 2, 2, 6, 3, 3, 2, 2, 2, 5, 4, 3, 4, 1, 1, 7, 4, 3, 4, 2, 3, 2, 1,
)

STORE_FORMATS: tuple[str, ...] = ("Flagship", "Mall", "Outlet", "Express")
STORE_FORMAT_WEIGHTS: tuple[float, ...] = (0.10, 0.40, 0.20, 0.30)
# Square footage range per format, in hundreds of square feet.
STORE_FOOTAGE: dict[str, tuple[int, int]] = {
    "Flagship": (400, 800),
    "Mall": (150, 350),
    "Outlet": (100, 250),
    "Express": (20, 60),
}

# --- products ----------------------------------------------------------------------------------
# category -> (subcategories, item nouns per subcategory, brands, median list price in dollars)
CATEGORIES: dict[str, tuple[tuple[str, ...], tuple[tuple[str, ...], ...], tuple[str, ...], float]] = {
    "Electronics": (
        ("Audio", "Phones", "Computers", "Accessories"),
        (
            ("Wireless Earbuds", "Bluetooth Speaker", "Soundbar", "Headphones"),
            ("Smartphone", "Phone Case", "Screen Protector", "Wireless Charger"),
            ('27" Monitor', "Laptop", "Keyboard", "Mouse"),
            ("USB-C Cable", "Power Bank", "HDMI Adapter", "Memory Card"),
        ),
        ("Voltix", "Sonara", "Nexa", "Pixelon"),
        60.0,
    ),
    "Apparel": (
        ("Men", "Women", "Kids", "Shoes"),
        (
            ("Oxford Shirt", "Chino Pants", "Denim Jacket", "Polo Shirt"),
            ("Wrap Dress", "Knit Sweater", "Leggings", "Blouse"),
            ("Graphic Tee", "Hoodie", "Rain Jacket", "Pajama Set"),
            ("Running Shoes", "Leather Boots", "Sandals", "Sneakers"),
        ),
        ("Northwind", "Urbanthread", "Cotton Lane", "Stride"),
        35.0,
    ),
    "Home": (
        ("Kitchen", "Bedding", "Decor", "Furniture"),
        (
            ("Chef Knife", "Nonstick Pan", "Blender", "Coffee Maker"),
            ("Duvet Cover", "Pillow Set", "Sheet Set", "Throw Blanket"),
            ("Table Lamp", "Wall Mirror", "Scented Candle", "Picture Frame"),
            ("Bookshelf", "Side Table", "Office Chair", "Bar Stool"),
        ),
        ("Hearthstone", "Casa Bella", "Oakridge", "Lumen"),
        45.0,
    ),
    "Grocery": (
        ("Snacks", "Beverages", "Pantry"),
        (
            ("Trail Mix", "Potato Chips", "Granola Bars", "Dark Chocolate"),
            ("Cold Brew", "Sparkling Water", "Green Tea", "Orange Juice"),
            ("Olive Oil", "Pasta", "Basmati Rice", "Peanut Butter"),
        ),
        ("Harvest Farms", "Green Valley", "Daily Pantry"),
        6.0,
    ),
    "Beauty": (
        ("Skincare", "Makeup", "Haircare"),
        (
            ("Face Serum", "Moisturizer", "Sunscreen", "Cleanser"),
            ("Lipstick", "Mascara", "Foundation", "Eyeliner"),
            ("Shampoo", "Conditioner", "Hair Oil", "Styling Gel"),
        ),
        ("Glowe", "Aurelle", "Pure Botanica"),
        18.0,
    ),
    "Sports": (
        ("Fitness", "Outdoor", "Cycling"),
        (
            ("Yoga Mat", "Dumbbell Set", "Resistance Bands", "Jump Rope"),
            ("Camping Tent", "Hiking Backpack", "Water Bottle", "Sleeping Bag"),
            ("Bike Helmet", "Bike Lights", "Cycling Gloves", "Bike Lock"),
        ),
        ("Peakline", "Trailmaster", "Velocity"),
        40.0,
    ),
    "Toys": (
        ("Games", "Building", "Outdoor Play"),
        (
            ("Board Game", "Card Game", "Puzzle", "Trivia Game"),
            ("Brick Set", "Magnetic Tiles", "Train Set", "Robot Kit"),
            ("Water Blaster", "Kite", "Scooter", "Sandbox Set"),
        ),
        ("Funforge", "Brightkids", "Playwell"),
        25.0,
    ),
}
CATEGORY_WEIGHTS: tuple[float, ...] = (0.18, 0.22, 0.16, 0.14, 0.12, 0.10, 0.08)
PRODUCT_ADJECTIVES: tuple[str, ...] = ("Classic", "Premium", "Essential", "Pro", "Eco", "Compact", "Deluxe", "Everyday")
PRODUCT_COLORS: tuple[str, ...] = ("Black", "White", "Navy", "Red", "Sage", "Graphite")

# Planted price tests: these products change price every few days, to one of these levels of their
# first price, and their demand follows (price / first price) ** elasticity. Each gets this share of
# the other products' popularity, before its demand response.
PRICE_TEST_ELASTICITIES: tuple[float, ...] = (-2.5, -2.5, -1.0, -1.0, -0.25, -0.25)
PRICE_TEST_LEVELS: tuple[float, ...] = (0.75, 0.9, 1.0, 1.15, 1.3)
PRICE_TEST_EVERY_DAYS = 3
PRICE_TEST_SHARE = 0.05
# Planted churn: this share of customers stops buying for good, at least this long after they exist.
CHURN_RATE = 0.25
CHURN_MIN_TENURE_DAYS = 14

# --- sales, payments, loyalty ------------------------------------------------------------------
ORDER_STATUSES: tuple[str, ...] = ("Completed", "Shipped", "Delivered", "Cancelled")
RETURN_REASONS: tuple[str, ...] = (
    "Defective", "Wrong size", "Not as described", "Changed mind", "Damaged in transit",
    "Better price elsewhere", "Arrived late",
)
RETURN_REASON_WEIGHTS: tuple[float, ...] = (0.20, 0.22, 0.15, 0.20, 0.10, 0.08, 0.05)
PAYMENT_TYPES: tuple[str, ...] = ("Credit Card", "Debit Card", "PayPal", "Gift Card", "Cash")
CARD_BRANDS: tuple[str, ...] = ("Visa", "Mastercard", "Amex", "Discover")
PAYMENT_STATUSES: tuple[str, ...] = ("Completed", "Pending", "Failed")
REFUND_STATUSES: tuple[str, ...] = ("Processed", "Pending")
LOYALTY_EVENT_TYPES: tuple[str, ...] = ("earn", "redeem", "bonus", "expire")
LOYALTY_EVENT_WEIGHTS: tuple[float, ...] = (0.70, 0.15, 0.10, 0.05)

# --- dirty variants ----------------------------------------------------------------------------
INVALID_AGE_GROUPS: tuple[str, ...] = ("17-", "unknown", "18_25", "0-17", "N/A", "100+")
INVALID_GENDERS: tuple[str, ...] = ("X", "male", "female", "U", "m", "N/A")
